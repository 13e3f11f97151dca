#!/bin/sh
echo "reef: 'bazel coverage' is unavailable: its tools (remote_coverage_tools) would be downloaded, and Reef builds offline." >&2
exit 1
