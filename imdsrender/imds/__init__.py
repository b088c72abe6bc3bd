"""The IMDS transport: wire constants, endpoint resolution, the client.

Importing this package loads nothing heavy; each module is imported on use.
"""
