// Boost.URL in header-only mode: its implementation is compiled here, once for the program
// (token_url parsing and form encoding for the OAuth2 token request).
#include <boost/url/src.hpp>
