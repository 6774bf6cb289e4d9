# Attested TLS 1.3 extension (src/attest/atls.c): in-memory handshakes over
# BIO pairs with the sim provider; codec, appraisal and every rejection.
if(TARGET tmqtt_attest)
  add_executable(test_atls ${CMAKE_CURRENT_LIST_DIR}/test_atls.c)
  target_link_libraries(test_atls PRIVATE tmqtt_attest OpenSSL::SSL)
  add_test(NAME atls COMMAND test_atls)
endif()
