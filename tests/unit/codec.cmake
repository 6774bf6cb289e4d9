# Codec unit tests (src/mqtt): packets, properties, primitives; topics.
add_executable(test_codec ${CMAKE_CURRENT_LIST_DIR}/test_codec.c)
target_link_libraries(test_codec PRIVATE tmqtt_mqtt)
add_test(NAME codec COMMAND test_codec)

add_executable(test_topic ${CMAKE_CURRENT_LIST_DIR}/test_topic.c)
target_link_libraries(test_topic PRIVATE tmqtt_mqtt)
add_test(NAME topic COMMAND test_topic)
