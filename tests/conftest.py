"""Settings for the whole suite."""

import os

# Runs connect per run unless a test turns kept connections on (tests/integration/
# test_keeper.py): a keeper would outlive the test that started it by up to a minute.
os.environ["OPSFIX_PERSIST"] = "0"
