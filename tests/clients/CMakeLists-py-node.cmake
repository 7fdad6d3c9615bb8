# The Python and Node reference clients of the routing pattern (SPEC §7):
# their own policy tests, the shared behaviour list (clients/behaviours.json)
# and live tests against the real binary, which each suite starts itself on
# port 0 through FLEETMOCK_BIN. Included from tests/CMakeLists.txt, which
# finds NODE_EXECUTABLE.
find_program(PYTHON3_EXECUTABLE python3)
if(PYTHON3_EXECUTABLE)
  add_test(NAME clients.python
    COMMAND ${PYTHON3_EXECUTABLE} -m unittest discover -s ${PROJECT_SOURCE_DIR}/clients/python
            -p "test_[lp]*.py" -v) # the kit (test_testkit.py) is clients.python_testkit
  # No __pycache__ in the source tree.
  set_tests_properties(clients.python PROPERTIES
    ENVIRONMENT "FLEETMOCK_BIN=$<TARGET_FILE:fleetmock>;PYTHONDONTWRITEBYTECODE=1"
    LABELS "clients"
    TIMEOUT 300)
else()
  message(WARNING "python3 not found: clients.python is skipped")
endif()

if(NODE_EXECUTABLE)
  # The wrapper imports the openai SDK from tests/conformance/node_modules
  # (`npm ci --prefix tests/conformance`); without it the test fails loudly.
  add_test(NAME clients.node
    COMMAND ${NODE_EXECUTABLE} --test --test-concurrency=1
            ${PROJECT_SOURCE_DIR}/clients/node/policy.test.mjs
            ${PROJECT_SOURCE_DIR}/clients/node/live.test.mjs)
  set_tests_properties(clients.node PROPERTIES
    ENVIRONMENT "FLEETMOCK_BIN=$<TARGET_FILE:fleetmock>"
    LABELS "clients"
    TIMEOUT 300)
endif()
