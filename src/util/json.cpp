// Boost.JSON in header-only mode: its implementation is compiled here, once for the program.
#include <boost/json/src.hpp>
