#!/bin/sh
# Runs a test binary with extra arguments: how one reactor test binary is run
# a second time on the other I/O backend (see reef_cc_test in cc.bzl).
binary="$1"
shift
exec "$binary" "$@"
