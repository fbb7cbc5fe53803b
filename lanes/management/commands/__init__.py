"""`manage.py martingale`: the command line of SPEC §9."""
