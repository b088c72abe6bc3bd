"""IMDSv2 wire constants, shared by the client and the emulator.

One home for what the real service defines: the token path and headers,
the TTL bounds and the two default endpoints.  Standard library only.
"""

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MIN_TTL = 1
MAX_TTL = 21600
IPV4_ENDPOINT = "http://169.254.169.254"
IPV6_ENDPOINT = "http://[fd00:ec2::254]"
