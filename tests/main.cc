// The Catch2 test runner of g60ledger.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
