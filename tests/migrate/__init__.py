"""Tests of imdsrender.migrate, one file per module, and the differential harness against Go."""
