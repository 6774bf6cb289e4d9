# Attested TLS for the client tools: the client-side helpers
# (src/client/atls_client.c, library tmqtt_atls_client, also used by
# tmqtt-bench) and linking them into tmqtt_tools_common, whose
# tm_tools_attest_setup() calls them. Sorted after client-tools.cmake.
include(${CMAKE_SOURCE_DIR}/src/attest/atls.cmake)
if(TARGET tmqtt_attest AND TARGET tmqtt_client AND NOT TARGET tmqtt_atls_client)
  add_library(tmqtt_atls_client STATIC ${CMAKE_SOURCE_DIR}/src/client/atls_client.c)
  target_link_libraries(tmqtt_atls_client PUBLIC tmqtt_client tmqtt_attest)
endif()
if(TARGET tmqtt_atls_client AND TARGET tmqtt_tools_common)
  target_link_libraries(tmqtt_tools_common PUBLIC tmqtt_atls_client)
endif()
