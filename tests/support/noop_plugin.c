/* A version 5 Mosquitto plugin that registers nothing: stands for plugins that check no
 * access (a logger, a metrics exporter), for the tests of how twins' access check defers. */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
  for (int i = 0; i < supported_version_count; i++) {
    if (supported_versions[i] == 5) return 5;
  }
  return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts,
                          int opt_count) {
  (void)identifier;
  (void)userdata;
  (void)opts;
  (void)opt_count;
  return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count) {
  (void)userdata;
  (void)opts;
  (void)opt_count;
  return MOSQ_ERR_SUCCESS;
}
