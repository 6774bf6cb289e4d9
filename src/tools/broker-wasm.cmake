# broker-wasm.cmake — hook for tmqtt-broker.wasm + tmqtt-wasm (src/broker/wasm.cmake,
# docs/wasm-broker.md). Lives here because src/tools includes every *.cmake fragment;
# it can go once src/broker/CMakeLists.txt has `include(${CMAKE_CURRENT_SOURCE_DIR}/wasm.cmake)`
# (wasm.cmake has an include guard, so both together are harmless).
include(${CMAKE_SOURCE_DIR}/src/broker/wasm.cmake)
