#!/usr/bin/env python3
"""Runs every example of README.md against a real broker with the built plugin.

An example is a ```sh block; when the next block is ```json or ```text, the command's output
must equal it. Examples run in order, in one bash each, against one broker started here on
free ports: `-p 1883` and `127.0.0.1:8080` in commands are rewritten to those ports, and
$TOKEN holds the REST token. The broker is $TWINS_MOSQUITTO, else Debian's /usr/sbin/mosquitto
(tests/support/start_broker.sh).
Usage: readme_test.py <README.md> <mosquitto_twins.so>
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from start_broker import Broker  # noqa: E402 (after the path is set)

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def examples(readme):
    blocks = [(m.group(1), m.group(2).strip()) for m in BLOCK.finditer(readme)]
    for i, (lang, body) in enumerate(blocks):
        if lang != "sh":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else (None, None)
        yield body, following[1] if following[0] in ("json", "text") else None


def main():
    readme_path, plugin = sys.argv[1], sys.argv[2]
    readme = open(readme_path, encoding="utf-8").read()
    token = "readme-test-token"
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(tmp, f"plugin {plugin}\nplugin_opt_db_path {tmp}/db\n"
                             f"plugin_opt_rest_listen 127.0.0.1:@REST_PORT@\nplugin_opt_rest_token {token}\n")
        mqtt, rest = broker.mqtt, broker.rest
        try:
            passed = failed = 0
            env = dict(os.environ, TOKEN=token)
            for command, expected in examples(readme):
                run = command.replace("-p 1883", f"-p {mqtt}").replace("127.0.0.1:8080", f"127.0.0.1:{rest}")
                result = subprocess.run(["bash", "-c", run], capture_output=True, text=True, env=env, timeout=20)
                ok = result.returncode == 0 and (expected is None or result.stdout.strip() == expected)
                if ok:
                    passed += 1
                else:
                    failed += 1
                    print(f"FAILED: {command}\n  expected: {expected}\n  got: {result.stdout.strip()}"
                          f"\n  exit {result.returncode}: {result.stderr.strip()}")
        finally:
            broker.stop()
    print(f"readme examples: {passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
