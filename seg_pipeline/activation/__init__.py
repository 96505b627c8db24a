"""The activation stage: tables that turn segments and scores into actions for customers."""
