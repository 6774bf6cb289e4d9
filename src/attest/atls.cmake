# Attested TLS 1.3 extension (src/attest/atls.c) — part of tmqtt_attest.
# It needs libssl (SSL_CTX_add_custom_ext), the rest of tmqtt_attest only
# libcrypto. Included from src/attest/CMakeLists.txt; src/tools/tools-atls.cmake
# includes it too for builds where that line is missing. The global property
# makes a second include a no-op.
get_property(_tm_atls_added GLOBAL PROPERTY TM_ATLS_ADDED)
if(NOT _tm_atls_added AND TARGET tmqtt_attest)
  set_property(GLOBAL PROPERTY TM_ATLS_ADDED TRUE)
  target_sources(tmqtt_attest PRIVATE ${CMAKE_SOURCE_DIR}/src/attest/atls.c)
  target_link_libraries(tmqtt_attest PUBLIC OpenSSL::SSL)
endif()
