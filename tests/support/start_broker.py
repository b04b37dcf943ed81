"""Python side of start_broker.sh, the launcher of every test broker: see that script."""
import os
import subprocess

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "start_broker.sh")


def free_ports(count):
    """`count` distinct ports free on 127.0.0.1, by the launcher's rule."""
    return [int(p) for p in subprocess.run([SCRIPT, "--free-ports", str(count)], check=True, capture_output=True,
                                           text=True).stdout.split()]


class Broker:
    """mosquitto started in `directory` with `config` (and `global_config` before the listener);
    returns once it listens on .mqtt (and on .rest when the config names @REST_PORT@)."""

    def __init__(self, directory, config="", global_config=""):
        self.log_path = os.path.join(directory, "mosquitto.log")
        self.process = subprocess.Popen([SCRIPT, directory, config, global_config], stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline()
        self.process.stdout.close()
        if not ready.startswith("port="):
            self.process.kill()
            self.process.wait()
            raise RuntimeError("the broker did not start:\n" + self.log())
        fields = dict(item.split("=") for item in ready.split())
        self.mqtt, self.rest = int(fields["port"]), int(fields["rest_port"])

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, timeout=20):
        self.process.terminate()
        return self.process.wait(timeout=timeout)
