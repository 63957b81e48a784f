#include "contra/core/error.h"

#include <c10/util/Exception.h>

namespace contra {

int exit_code_for(const std::exception& e) noexcept {
  if (dynamic_cast<const UsageError*>(&e) || dynamic_cast<const ConfigError*>(&e) ||
      dynamic_cast<const DataError*>(&e) || dynamic_cast<const IoError*>(&e) ||
      dynamic_cast<const UnavailableError*>(&e) || dynamic_cast<const NumericalError*>(&e)) {
    return 2;
  }
  return 1;
}

namespace {
template <class E>
bool rethrow_as(const std::exception& e, const std::string& context) {
  if (auto* typed = dynamic_cast<const E*>(&e)) throw E(context + ": " + typed->what());
  return false;
}
}  // namespace

void rethrow_with_context(const std::string& context) {
  try {
    throw;
  } catch (const std::exception& e) {
    // Most derived first.
    rethrow_as<UsageError>(e, context);
    rethrow_as<ConfigError>(e, context);
    rethrow_as<DataError>(e, context);
    rethrow_as<IoError>(e, context);
    rethrow_as<UnavailableError>(e, context);
    rethrow_as<NumericalError>(e, context);
    if (auto* c10 = dynamic_cast<const c10::Error*>(&e)) {
      throw Error(context + ": " + c10->what_without_backtrace());
    }
    throw Error(context + ": " + e.what());
  }
}

}  // namespace contra
