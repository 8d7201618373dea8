#include "probes/register.h"

#include "probes/http.h"
#include "probes/journal.h"
#include "probes/unit.h"

namespace vigil {

std::shared_ptr<Probe> make_probe(ProbeContext ctx, const CheckConfig& check) {
  if (check.probe == "http" && check.http() != nullptr) {
    return std::make_shared<HttpProbe>(ctx, check);
  }
  if (check.probe == "journal" && check.journal() != nullptr) {
    return std::make_shared<JournalProbe>(ctx, check);
  }
  if (check.probe == "unit" && check.unit() != nullptr) {
    return std::make_shared<UnitProbe>(ctx, check);
  }
  return nullptr;
}

}  // namespace vigil
