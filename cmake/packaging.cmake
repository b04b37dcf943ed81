# Install where Debian's mosquitto keeps its plugins, and a .deb built by CPack.
#
#   cmake --install build                       -> /usr/lib/<triplet>/mosquitto_twins.so
#                                                  /usr/bin/mosquitto-twins-admin
#                                                  /etc/mosquitto/conf.d/twins.conf.example
#   cmake --build build --target package        -> build/mosquitto-twins_<version>_<arch>.deb

# twins.conf.example: the plugin part of mosquitto.conf.example, the one file users read.
file(READ ${PROJECT_SOURCE_DIR}/mosquitto.conf.example full_example)
string(FIND "${full_example}" "# --- The twins plugin" plugin_part_start)
string(SUBSTRING "${full_example}" ${plugin_part_start} -1 plugin_part)
file(WRITE ${PROJECT_BINARY_DIR}/twins.conf.example
  "# mosquitto-twins: uncomment and adapt, then rename to twins.conf.\n"
  "# The broker part of a complete setup is in the project's mosquitto.conf.example.\n\n"
  "${plugin_part}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/mosquitto.conf.example)

install(TARGETS mosquitto_twins LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT plugin)
install(TARGETS mosquitto-twins-admin RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT plugin)
install(FILES ${PROJECT_BINARY_DIR}/twins.conf.example DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mosquitto/conf.d
        COMPONENT plugin)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mosquitto-twins)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "mosquitto-twins maintainers <maintainers@mosquitto-twins.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Device twins (Cloud Twins) plugin for the Mosquitto MQTT broker")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_STRIP_FILES ON)
# Library dependencies come from dpkg-shlibdeps; the broker that loads the plugin is named by hand.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "mosquitto (>= 2.0)")
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};plugin;/")
include(CPack)
