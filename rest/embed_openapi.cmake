# cmake -DINPUT=openapi.yaml -DOUTPUT=openapi_yaml.cpp -P embed_openapi.cmake
file(READ ${INPUT} yaml)
string(FIND "${yaml}" ")openapi\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )openapi\"")
endif()
file(WRITE ${OUTPUT}
  "// Generated from rest/openapi.yaml by rest/embed_openapi.cmake; do not edit.\n"
  "#include \"rest/openapi.hpp\"\n\n"
  "namespace twins {\n\n"
  "std::string_view OpenApiYaml() {\n"
  "  static constexpr char kYaml[] = R\"openapi(${yaml})openapi\";\n"
  "  return {kYaml, sizeof(kYaml) - 1};\n"
  "}\n\n"
  "}  // namespace twins\n")
