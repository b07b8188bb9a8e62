# How a service and its tests are declared: one call of hs_service in services/<name>/CMakeLists.txt is the
# whole of a service's place in the build (docs/adding-a-service.md). The test tiers' registration
# functions live here too, so that a service's folder registers its own tests.

# An integration test: COMMAND... run against its own embedded broker (tools/hs-broker), label integration.
function(hs_integration_test name)
  add_test(NAME integration.${name}
           COMMAND ${CMAKE_SOURCE_DIR}/tests/lib/with-hs-broker $<TARGET_FILE:hs-broker> -- ${ARGN})
  set_tests_properties(integration.${name} PROPERTIES LABELS integration TIMEOUT 300)
endfunction()

# An e2e test: COMMAND... run against the real Kafka the e2e.kafka_start fixture started, label e2e.
function(hs_e2e_test name)
  add_test(NAME e2e.${name} COMMAND ${CMAKE_SOURCE_DIR}/tests/lib/with-kafka ${ARGN})
  set_tests_properties(e2e.${name} PROPERTIES LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 600
                       RESOURCE_LOCK kafka ENVIRONMENT HS_BUILD_DIR=${CMAKE_BINARY_DIR})
endfunction()

# hs_service(<name>
#            CALC <source>...                the calculation, library <name>_calc: it defines
#                                            `const hs_calc <name>_calc` (hs/calc.h) and is pure — it links
#                                            hs_core only and cannot include an I/O library's header
#            [MAIN <source>...]              the executable <name> (default: main.c), calculation + runtime
#            [UNIT_TEST <source>]            cmocka program test_<name> (calculation + tests/lib/calcrun.h),
#                                            ctest unit.test_<name>
#            [INTEGRATION_TEST <script>      Python script, ctest integration.<name> on an embedded broker,
#             [ARGS <arg>...]                run as <script> <service binary> <hsctl> <args>...
#             [E2E] [E2E_DEPENDS <test>...]] and as e2e.<name> on real Kafka, after the tests named)
# <name> is a C identifier (it names the hs_calc). Every service declared is also in `hsctl calc` (the
# global property HS_SERVICES, read by tools/hsctl) and in the tests that cover every service
# (integration.metrics_page).
function(hs_service name)
  cmake_parse_arguments(PARSE_ARGV 1 svc "E2E" "UNIT_TEST;INTEGRATION_TEST" "CALC;MAIN;ARGS;E2E_DEPENDS")
  if(NOT svc_CALC)
    message(FATAL_ERROR "hs_service(${name}): CALC <sources> is required")
  endif()
  if(svc_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "hs_service(${name}): unknown arguments ${svc_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT svc_MAIN)
    set(svc_MAIN main.c)
  endif()

  add_library(${name}_calc STATIC ${svc_CALC})
  target_include_directories(${name}_calc PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name}_calc PUBLIC hs_core)
  hs_pure(${name}_calc)

  add_executable(${name} ${svc_MAIN})
  target_link_libraries(${name} PRIVATE ${name}_calc hs)
  set_property(GLOBAL APPEND PROPERTY HS_SERVICES ${name})

  if(svc_UNIT_TEST)
    add_executable(test_${name} ${svc_UNIT_TEST})
    target_link_libraries(test_${name} PRIVATE ${name}_calc hs hs_calcrun PkgConfig::CMOCKA)
    add_test(NAME unit.test_${name} COMMAND test_${name})
    set_tests_properties(unit.test_${name} PROPERTIES LABELS unit TIMEOUT 120)
  endif()
  if(svc_INTEGRATION_TEST)
    set(command ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/${svc_INTEGRATION_TEST}
                $<TARGET_FILE:${name}> $<TARGET_FILE:hsctl> ${svc_ARGS})
    hs_integration_test(${name} ${command})
    if(svc_E2E)
      hs_e2e_test(${name} ${command})
      if(svc_E2E_DEPENDS)
        set_tests_properties(e2e.${name} PROPERTIES DEPENDS "${svc_E2E_DEPENDS}")
      endif()
    endif()
  endif()
endfunction()
