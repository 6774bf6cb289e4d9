# The broker engine without sockets (src/broker/broker.h): sessions, QoS
# flows, takeover, wills, expiry, keep alive, ACLs, attested claims.
add_executable(test_broker ${CMAKE_CURRENT_LIST_DIR}/test_broker.c)
target_link_libraries(test_broker PRIVATE tmqtt_broker)
target_include_directories(test_broker PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME broker COMMAND test_broker)

# The keyed hash map (src/broker/map.c), SipHash checked against OpenSSL's.
add_executable(test_map ${CMAKE_CURRENT_LIST_DIR}/test_map.c)
target_link_libraries(test_map PRIVATE tmqtt_broker OpenSSL::Crypto)
target_include_directories(test_map PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME map COMMAND test_map)

# Persistence's engine half (src/broker/journal.c): records and back.
add_executable(test_journal ${CMAKE_CURRENT_LIST_DIR}/test_journal.c)
target_link_libraries(test_journal PRIVATE tmqtt_broker)
target_include_directories(test_journal PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME journal COMMAND test_journal)

# Persistence's file half (src/broker/store.c): frames, rewrites in pieces,
# a failed rewrite leaving the store as it was.
add_executable(test_store ${CMAKE_CURRENT_LIST_DIR}/test_store.c
               ${PROJECT_SOURCE_DIR}/src/broker/store.c ${PROJECT_SOURCE_DIR}/src/broker/seal.c)
target_link_libraries(test_store PRIVATE tmqtt_broker)
target_include_directories(test_store PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME store COMMAND test_store)

# Bridges, the engine's side (src/broker/bridge.c) and their configuration.
add_executable(test_bridge ${CMAKE_CURRENT_LIST_DIR}/test_bridge.c)
target_link_libraries(test_bridge PRIVATE tmqtt_broker)
target_include_directories(test_bridge PRIVATE ${CMAKE_CURRENT_LIST_DIR})
add_test(NAME bridge COMMAND test_bridge)
