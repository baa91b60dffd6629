// The report's inline stylesheet and scripts (kept apart from the C++ that builds the page).
#pragma once

namespace fetafix::report::assets {

// In <head>, before anything else runs: counts script errors from the first moment.
extern const char* const kErrorProbe;
extern const char* const kStyle;
// At the end of <body>: finding filters, and the render marker tests and benches read
// (#render-check: data-status, data-errors, data-sections, data-load-ms).
extern const char* const kScript;

}  // namespace fetafix::report::assets
