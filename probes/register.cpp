#include "probes/register.h"

#include "probes/http.h"

namespace vigil {

std::vector<std::string_view> probe_kinds() { return {"http"}; }

std::shared_ptr<Probe> make_probe(ProbeContext ctx, const CheckConfig& check) {
  if (check.probe == "http" && check.http() != nullptr) {
    return std::make_shared<HttpProbe>(ctx, check);
  }
  return nullptr;
}

}  // namespace vigil
