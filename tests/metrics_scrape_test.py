#!/usr/bin/python3
"""Scrapes a real broker with the built plugin and reads /metrics with a real Prometheus parser.

The broker runs on free loopback ports with sys_interval 1. Requests of each kind (success,
each error kind, rate limited) are made with the stock mosquitto clients and a real HTTP client;
the counters must move by exactly the requests made. The text also passes `promtool check
metrics`, a real Prometheus server scrapes it (when Debian's prometheus is installed), and the
same counters arrive as retained $SYS/broker/twins/... messages at a real subscriber.
Usage: metrics_scrape_test.py <mosquitto_twins.so>
Needs Debian's python3-prometheus-client (scripts/install-deps.sh), mosquitto-clients, promtool.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "support"))
from start_broker import Broker, free_ports  # noqa: E402 (after the path is set)

PLUGIN = None
TOKEN = "metrics-test-token"
TIMEOUT = 20  # seconds, the bound of every wait; none of them is a fixed sleep


def wait_until(check, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


class BrokerProcess(Broker):
    def __init__(self, tmp, plugin_lines, global_lines=""):
        super().__init__(tmp, f"plugin {PLUGIN}\nplugin_opt_db_path {tmp}/db\n"
                              f"plugin_opt_rest_listen 127.0.0.1:@REST_PORT@\n{plugin_lines}", global_lines)

    def http(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.rest, timeout=TIMEOUT)
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        data = response.read().decode()
        connection.close()
        return response.status, data, response.getheader("Content-Type")

    def rest_call(self, method, twin, doc=None, body=None, token=TOKEN):
        path = f"/iot/v1/regions/fr-par/twins/{twin}" + (f"/documents/{doc}" if doc else "")
        return self.http(method, path, body, {"X-Auth-Token": token} if token else {})[0]

    def mqtt_call(self, client, doc, method, payload, reply):
        topic = f"$SCW/twins/me/{doc}/{method}"
        command = ["mosquitto_rr", "-p", str(self.mqtt), "-i", client, "-t", topic, "-e",
                   f"{topic}/response/{reply}", "-W", str(TIMEOUT)]
        command += ["-m", payload] if payload else ["-n"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT + 5)
        if result.returncode != 0:
            raise AssertionError(f"{topic} got no {reply} reply: {result.stderr}")
        return json.loads(result.stdout)

    def scrape_text(self, headers=None):
        status, text, content_type = self.http("GET", "/metrics", headers=headers)
        if status != 200:
            raise AssertionError(f"/metrics answered {status}: {text}")
        return text, content_type

    def scrape(self):
        """{(sample name, frozenset of labels): value} through the Prometheus client's parser."""
        text, _ = self.scrape_text({"Authorization": "Bearer " + TOKEN})
        values = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return values


def key(name, **labels):
    return (name, frozenset(labels.items()))


def delta(before, after, name, **labels):
    return after.get(key(name, **labels), 0) - before.get(key(name, **labels), 0)


class MetricsScrapeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="twins-metrics-")
        cls.broker = BrokerProcess(cls.tmp, f"plugin_opt_rest_token {TOKEN}\nplugin_opt_max_documents 2\n"
                                            "plugin_opt_max_requests_per_second 1\nplugin_opt_request_burst 5\n",
                                   global_lines="sys_interval 1\n")

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_mqtt_requests_are_counted_by_operation_and_result(self):
        b = self.broker
        before = b.scrape()
        b.mqtt_call("mqtt-dev", "state", "put", '{"data":{"t":1}}', "success")
        b.mqtt_call("mqtt-dev", "state", "get", None, "success")
        b.mqtt_call("mqtt-dev", "state", "patch", '{"version":1,"data":{"t":2}}', "success")
        b.mqtt_call("mqtt-dev", "state", "put", '{"version":1,"data":{}}', "error")  # stale version
        b.mqtt_call("mqtt-dev", "state", "patch", '{"data":{"a":[null]}}', "error")  # invalid
        b.mqtt_call("mqtt-dev3", "missing", "get", None, "error")  # not found (another twin: burst of 5)
        b.mqtt_call("mqtt-dev2", "a", "put", '{"data":{}}', "success")
        b.mqtt_call("mqtt-dev2", "b", "put", '{"data":{}}', "success")
        quota = b.mqtt_call("mqtt-dev2", "c", "put", '{"data":{}}', "error")  # a third document: quota
        self.assertEqual(quota["resource"], "twin_documents")
        after = b.scrape()
        req = "twins_requests_total"
        self.assertEqual(delta(before, after, req, api="mqtt", operation="put", result="ok"), 3)
        self.assertEqual(delta(before, after, req, api="mqtt", operation="get", result="ok"), 1)
        self.assertEqual(delta(before, after, req, api="mqtt", operation="patch", result="ok"), 1)
        self.assertEqual(delta(before, after, req, api="mqtt", operation="put", result="version_mismatch"), 1)
        self.assertEqual(delta(before, after, req, api="mqtt", operation="patch", result="invalid_argument"), 1)
        self.assertEqual(delta(before, after, req, api="mqtt", operation="get", result="not_found"), 1)
        self.assertEqual(delta(before, after, req, api="mqtt", operation="put", result="quota_exceeded"), 1)
        self.assertEqual(delta(before, after, "twins_version_conflicts_total"), 1)
        self.assertEqual(delta(before, after, "twins_quota_rejections_total", quota="twin_documents"), 1)
        self.assertEqual(delta(before, after, "twins_request_duration_seconds_count", api="mqtt", operation="put"), 5)
        self.assertEqual(delta(before, after, "twins_mqtt_broker_thread_seconds_count", operation="put"), 5)
        self.assertGreater(delta(before, after, "twins_request_duration_seconds_sum", api="mqtt", operation="put"), 0)

    def test_rest_requests_are_counted_by_operation_and_result(self):
        b = self.broker
        before = b.scrape()
        self.assertEqual(b.rest_call("PUT", "rest-dev", "desired", '{"data":{"t":1}}'), 200)
        self.assertEqual(b.rest_call("GET", "rest-dev", "desired"), 200)
        self.assertEqual(b.rest_call("GET", "rest-dev", "absent"), 404)
        self.assertEqual(b.rest_call("PATCH", "rest-dev", "desired", '{"version":7,"data":{}}'), 412)
        self.assertEqual(b.rest_call("PUT", "rest-dev", "desired", '{"data":[1]}'), 400)
        self.assertEqual(b.rest_call("GET", "rest-dev"), 200)
        self.assertEqual(b.rest_call("GET", "rest-dev", "desired", token="wrong"), 401)
        self.assertEqual(b.rest_call("GET", "rest-dev", "desired", token=None), 401)
        self.assertEqual(b.rest_call("DELETE", "rest-dev"), 204)
        after = b.scrape()
        req = "twins_requests_total"
        self.assertEqual(delta(before, after, req, api="rest", operation="put", result="ok"), 1)
        self.assertEqual(delta(before, after, req, api="rest", operation="get", result="ok"), 1)
        self.assertEqual(delta(before, after, req, api="rest", operation="get", result="not_found"), 1)
        self.assertEqual(delta(before, after, req, api="rest", operation="patch", result="version_mismatch"), 1)
        self.assertEqual(delta(before, after, req, api="rest", operation="put", result="invalid_argument"), 1)
        self.assertEqual(delta(before, after, req, api="rest", operation="list", result="ok"), 1)
        self.assertEqual(delta(before, after, req, api="rest", operation="get", result="unauthenticated"), 2)
        self.assertEqual(delta(before, after, req, api="rest", operation="delete_all", result="ok"), 1)
        self.assertEqual(delta(before, after, "twins_rest_auth_failures_total"), 2)
        self.assertEqual(delta(before, after, "twins_version_conflicts_total"), 1)
        # The scrapes themselves are not twin requests.
        self.assertEqual(delta(before, after, req, api="rest", operation="other", result="ok"), 0)

    def test_rate_limited_requests_are_counted_on_both_apis(self):
        b = self.broker
        before = b.scrape()
        statuses = [b.rest_call("PATCH", "rest-flood", "d", '{"data":{"n":1}}') for _ in range(15)]
        limited_rest = statuses.count(429)
        self.assertGreater(limited_rest, 0)
        self.assertEqual(limited_rest + statuses.count(200), 15)
        # 30 MQTT requests on one connection, faster than 1 a second after a burst of 5.
        lines = "\n".join('{"data":{"n":%d}}' % i for i in range(30)) + "\n"
        subprocess.run(["mosquitto_pub", "-p", str(b.mqtt), "-i", "mqtt-flood", "-q", "1", "-t",
                        "$SCW/twins/me/d/patch", "-l"], input=lines, text=True, check=True, timeout=TIMEOUT)
        req = "twins_requests_total"

        def all_counted():
            after = b.scrape()
            counted = (delta(before, after, req, api="mqtt", operation="patch", result="ok") +
                       delta(before, after, req, api="mqtt", operation="patch", result="too_many_requests"))
            return after if counted == 30 else None
        after = wait_until(all_counted, "30 MQTT patches counted")
        limited_mqtt = delta(before, after, req, api="mqtt", operation="patch", result="too_many_requests")
        self.assertGreater(limited_mqtt, 0)
        self.assertEqual(delta(before, after, "twins_rate_limited_total", api="mqtt"), limited_mqtt)
        self.assertEqual(delta(before, after, "twins_rate_limited_total", api="rest"), limited_rest)
        self.assertEqual(delta(before, after, req, api="rest", operation="patch", result="too_many_requests"),
                         limited_rest)

    def test_store_figures_are_exposed(self):
        b = self.broker
        b.rest_call("PUT", "store-dev", "one", '{"data":{"x":1}}')
        values = b.scrape()
        self.assertGreater(values[key("twins_store_bytes")], 0)
        self.assertEqual(values[key("twins_writes_refused", reason="disk_reserve")], 0)
        self.assertEqual(values[key("twins_writes_refused", reason="store_failed")], 0)
        self.assertEqual(values[key("twins_store_write_failures_total")], 0)
        self.assertGreater(values[key("twins_cache_hits_total")] + values[key("twins_cache_misses_total")], 0)
        self.assertGreaterEqual(values[key("twins_twins")], -1)  # -1 until the background count ran
        self.assertEqual(values[key("twins_build_info", version=os.environ.get("TWINS_VERSION", "0.1.0"))], 1)

    def test_scrape_needs_a_token_and_takes_it_in_either_header(self):
        b = self.broker
        self.assertEqual(b.http("GET", "/metrics")[0], 401)
        self.assertEqual(b.http("GET", "/metrics", headers={"Authorization": "Bearer nope"})[0], 401)
        _, content_type = b.scrape_text({"X-Auth-Token": TOKEN})
        self.assertEqual(content_type, "text/plain; version=0.0.4; charset=utf-8")
        b.scrape_text({"Authorization": "bearer " + TOKEN})
        self.assertEqual(b.http("POST", "/metrics", body="{}", headers={"X-Auth-Token": TOKEN})[0], 405)

    def test_promtool_accepts_the_exposition(self):
        if not shutil.which("promtool"):
            self.skipTest("promtool not installed (Debian package prometheus)")
        text, _ = self.broker.scrape_text({"X-Auth-Token": TOKEN})
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                                timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stdout + result.stderr, "")

    def test_a_prometheus_server_scrapes_the_broker(self):
        if not shutil.which("prometheus"):
            self.skipTest("prometheus not installed")
        b = self.broker
        port = free_ports(1)[0]
        work = tempfile.mkdtemp(prefix="twins-prometheus-", dir=self.tmp)
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: twins\n"
                    f"    authorization:\n      credentials: {TOKEN}\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{b.rest}']\n")
        log = open(os.path.join(work, "prometheus.log"), "w")
        server = subprocess.Popen(["prometheus", "--config.file", os.path.join(work, "prometheus.yml"),
                                   "--storage.tsdb.path", os.path.join(work, "data"),
                                   "--web.listen-address", f"127.0.0.1:{port}"], stdout=log, stderr=log)
        try:
            def scraped():
                query = "http://127.0.0.1:%d/api/v1/query?query=twins_build_info" % port
                try:
                    with urllib.request.urlopen(query, timeout=2) as response:
                        result = json.load(response)["data"]["result"]
                except OSError:
                    return None
                return result or None
            result = wait_until(scraped, "Prometheus to scrape twins_build_info", timeout=60)
            self.assertEqual(result[0]["value"][1], "1")
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % port, timeout=5) as response:
                targets = json.load(response)["data"]["activeTargets"]
            self.assertEqual([t["health"] for t in targets], ["up"])
        finally:
            server.terminate()
            server.wait(timeout=TIMEOUT)
            log.close()

    def test_counters_are_published_as_retained_sys_topics(self):
        b = self.broker
        b.mqtt_call("sys-dev", "s", "put", '{"data":{}}', "success")
        expected = b.scrape()[key("twins_requests_total", api="mqtt", operation="put", result="ok")]
        topic = "$SYS/broker/twins/requests/mqtt/put/ok"
        # A real subscriber: the retained value, then one message per change, each second.
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(b.mqtt), "-t", topic, "-t",
                                "$SYS/broker/twins/store_bytes", "-v", "-W", str(TIMEOUT)],
                               stdout=subprocess.PIPE, text=True)
        try:
            seen = {}
            for line in sub.stdout:
                name, _, value = line.strip().partition(" ")
                seen[name] = float(value)
                if seen.get(topic, 0) >= expected and "$SYS/broker/twins/store_bytes" in seen:
                    break
            self.assertGreaterEqual(seen.get(topic, 0), expected, seen)
            self.assertGreater(seen["$SYS/broker/twins/store_bytes"], 0)
        finally:
            sub.terminate()
            sub.wait()
            sub.stdout.close()


class AnonymousMetricsTest(unittest.TestCase):
    def test_metrics_allow_anonymous_opens_only_metrics(self):
        tmp = tempfile.mkdtemp(prefix="twins-metrics-anon-")
        b = BrokerProcess(tmp, f"plugin_opt_rest_token {TOKEN}\nplugin_opt_metrics_allow_anonymous true\n",
                          global_lines="sys_interval 0\n")
        try:
            status, text, _ = b.http("GET", "/metrics")
            self.assertEqual(status, 200)
            # The parser names a counter's family without its _total suffix.
            self.assertIn("twins_requests", {f.name for f in text_string_to_metric_families(text)})
            self.assertEqual(b.rest_call("GET", "dev", "doc", token=None), 401)
        finally:
            b.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    PLUGIN = sys.argv.pop(1)
    unittest.main(verbosity=2)
