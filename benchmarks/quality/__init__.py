"""Quality: faithfulness and localisation tables of every method on the dev data."""
