#!/usr/bin/env python3
"""The README's access lines for the event feed (plugin_opt_events_topic) keep devices off it.

Takes the lines from README.md itself: the ```conf block of "The event feed" as an acl_file,
and the dynamic-security role entries it gives (the back-end's allow, the device roles'
denies). For each setup, a real broker with the built plugin and the feed on `twins/events`:
the back-end receives every change (an MQTT write and a REST write); devices subscribed to `#`
and to the feed receive nothing, and an event a device publishes on the feed reaches no one;
a device's own twin requests still work. With dynamic-security the device role allows `#`
(subscribing and sending), the case the denies are for.
The broker is $TWINS_MOSQUITTO, else Debian's /usr/sbin/mosquitto; dynamic-security is taken
from $TWINS_MOSQUITTO_PLUGINS, else /usr/lib/x86_64-linux-gnu.
Usage: events_acl_test.py <README.md> <mosquitto_twins.so>
"""
import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TOKEN = "events-acl-test-token"
FEED = "twins/events"
TIMEOUT = 20  # seconds, the bound of every wait


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what):
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def readme_lines(readme):
    """The acl_file block and the dynamic-security entries of the README's event feed section."""
    section = readme[readme.index("### The event feed"):]
    section = section[:section.index("\n---\n")]
    acl = re.search(r"^```conf\n(.*?)^```", section, re.S | re.M).group(1)
    backend_allow = json.loads(re.search(r"give the back-end's role `(\{[^`]*\})`", section).group(1))
    denies = re.search(r"^```text\n(.*?)^```", section, re.S | re.M).group(1)
    device_denies = json.loads("[" + denies + "]")
    assert f"plugin_opt_events_topic {FEED}" in section, "the README's example feed is no longer " + FEED
    return acl, backend_allow, device_denies


def dynsec_client(username, password, role):
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101, 64)
    return {"username": username, "password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": 101,
            "roles": [{"rolename": role}]}


def dynsec_config(backend_allow, device_denies):
    device_acls = [
        {"acltype": "publishClientSend", "topic": "$SCW/twins/%c/#", "allow": True},
        {"acltype": "publishClientSend", "topic": "$SCW/twins/me/#", "allow": True},
        # The case the denies are for: a device role that allows everything else.
        {"acltype": "publishClientSend", "topic": "#", "allow": True},
        {"acltype": "subscribePattern", "topic": "#", "allow": True},
        # mosquitto_rr subscribes to its reply topic ("#" does not match "$" topics); 2.1 asks
        # dynamic-security about it where 2.0 took the twins plugin's answer.
        {"acltype": "subscribePattern", "topic": "$SCW/twins/#", "allow": True},
    ] + device_denies
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True, "subscribe": False,
                             "unsubscribe": True},
        "clients": [dynsec_client("backend", "backend-password", "backend"),
                    dynsec_client("dev1", "dev1-password", "device")],
        "groups": [{"groupname": "devices", "roles": [{"rolename": "device"}], "clients": []}],
        "anonymousGroup": "devices",
        "roles": [{"rolename": "backend", "acls": [backend_allow]},
                  {"rolename": "device", "acls": device_acls}],
    }


class Broker:
    def __init__(self, tmp, plugin, lines):
        self.mqtt, self.rest = free_port(), free_port()
        conf = os.path.join(tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.mqtt} 127.0.0.1\nallow_anonymous true\nuser root\nset_tcp_nodelay true\n"
                    f"{lines['global']}plugin {plugin}\nplugin_opt_db_path {tmp}/db\n"
                    f"plugin_opt_rest_listen 127.0.0.1:{self.rest}\nplugin_opt_rest_token {TOKEN}\n"
                    f"plugin_opt_events_topic {FEED}\n{lines['after']}")
        self.log_path = os.path.join(tmp, "broker.log")
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen([os.environ.get("TWINS_MOSQUITTO") or "/usr/sbin/mosquitto", "-c", conf],
                                            stdout=log, stderr=log)
        wait_until(lambda: self.process.poll() is not None or self._answers(), "the broker to start")
        if self.process.poll() is not None:
            raise AssertionError("the broker did not start:\n" + self.log())

    def _answers(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rest}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        self.process.wait()


class Subscriber:
    """A mosquitto_sub printing `topic payload` lines; ready once its SUBACK came."""

    def __init__(self, broker, tmp, client_id, topics, username=None, password=None):
        self.path = os.path.join(tmp, client_id + ".out")
        args = ["stdbuf", "-oL", "mosquitto_sub", "-p", str(broker.mqtt), "-i", client_id, "-d", "-F", "%t %p"]
        if username:
            args += ["-u", username]
        if password:
            args += ["-P", password]
        for topic in topics:
            args += ["-t", topic]
        with open(self.path, "w") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: "received SUBACK" in self.output(), client_id + "'s SUBACK")

    def output(self):
        with open(self.path) as f:
            return f.read()

    def messages(self):
        return [line for line in self.output().splitlines()
                if not line.startswith(("Client ", "Subscribed ", "All subscription"))]

    def stop(self):
        self.process.terminate()
        self.process.wait()


def check_setup(name, plugin, lines, backend_login, device_login):
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(tmp, plugin, lines)
        subscribers = []
        try:
            backend = Subscriber(broker, tmp, "backend-1", [FEED + "/#"], *backend_login)
            devices = [Subscriber(broker, tmp, "dev1", ["#", FEED + "/#"], *device_login),
                       Subscriber(broker, tmp, "dev2", ["#", FEED + "/#"])]
            subscribers = [backend] + devices
            forged = subprocess.run(["mosquitto_pub", "-p", str(broker.mqtt), "-i", "dev3", "-q", "1",
                                     "-t", FEED + "/dev3/desired", "-m", '{"forged":true}'], capture_output=True)
            assert forged.returncode == 0, forged
            reply = subprocess.run(["mosquitto_rr", "-p", str(broker.mqtt), "-i", "dev3", "-W", "10",
                                    "-t", "$SCW/twins/me/current/put", "-e", "$SCW/twins/me/current/put/response/success",
                                    "-m", '{"data":{"t":1}}'], capture_output=True, text=True)
            assert reply.stdout.strip() == '{"version":1,"data":{"t":1}}', (name, reply)
            request = urllib.request.Request(
                f"http://127.0.0.1:{broker.rest}/iot/v1/regions/fr-par/twins/dev4/documents/desired",
                data=b'{"data":{"target":21}}', method="PUT",
                headers={"X-Auth-Token": TOKEN, "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            wait_until(lambda: len(backend.messages()) >= 2, name + ": the back-end's two events")
            time.sleep(0.5)  # what the devices would have received came in the same loop passes
            got = backend.messages()
            assert len(got) == 2, (name, got)
            assert got[0].startswith(FEED + '/dev3/current {"seq":') and '"source":"mqtt"' in got[0], (name, got)
            assert got[1].startswith(FEED + '/dev4/desired {"seq":') and '"source":"rest"' in got[1], (name, got)
            for device in devices:
                assert device.messages() == [], (name, device.path, device.messages())
        except Exception:
            for subscriber in subscribers:
                print(f"--- {subscriber.path}:\n{subscriber.output()}")
            print(f"--- broker log of {name}:\n{broker.log()}")
            raise
        finally:
            for subscriber in subscribers:
                subscriber.stop()
            broker.stop()
    print(f"{name}: ok")


def main():
    readme_path, plugin = sys.argv[1], sys.argv[2]
    acl, backend_allow, device_denies = readme_lines(open(readme_path, encoding="utf-8").read())
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        acl_path = os.path.join(tmp, "acl")
        with open(acl_path, "w") as f:
            f.write(acl)
        dynsec_path = os.path.join(tmp, "dynsec.json")
        with open(dynsec_path, "w") as f:
            json.dump(dynsec_config(backend_allow, device_denies), f)
        plugins = os.environ.get("TWINS_MOSQUITTO_PLUGINS") or "/usr/lib/x86_64-linux-gnu"
        setups = [
            ("acl_file", {"global": f"acl_file {acl_path}\n", "after": ""}, ("backend",), ("dev1",)),
            ("dynamic-security", {"global": "", "after": f"plugin {plugins}/mosquitto_dynamic_security.so\n"
                                                         f"plugin_opt_config_file {dynsec_path}\n"},
             ("backend", "backend-password"), ("dev1", "dev1-password")),
        ]
        for name, lines, backend_login, device_login in setups:
            try:
                check_setup(name, plugin, lines, backend_login, device_login)
                passed += 1
            except AssertionError as e:
                print(f"FAILED {name}: {e}")
                failed += 1
    print(f"events acl: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
