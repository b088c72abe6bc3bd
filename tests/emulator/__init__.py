"""Tests of the imdsrender.emulator package, one file per module group."""
