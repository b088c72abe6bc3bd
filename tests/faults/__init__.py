"""The IMDS fault matrix: the real CLI against the emulator on its bad days."""
