// JS <-> C++ conversion of forward batches and results (the shapes declared in src/native.ts).
#pragma once

#include <napi.h>

#include <vector>

#include "tandem/backend.h"

namespace tandem::binding {

// Throws Napi::Error with code INVALID_INPUT when the batch is not shaped as native.ts says.
std::vector<SequenceInput> readBatch(const Napi::Env& env, const Napi::Value& value);
Napi::Value writeOutputs(const Napi::Env& env, const std::vector<SequenceOutput>& outputs);

// An Error with `.code` (CONFIG, CHECKPOINT, INVALID_INPUT, DEVICE, OUT_OF_MEMORY, INTERNAL).
Napi::Error makeError(const Napi::Env& env, const std::string& code, const std::string& message);

}  // namespace tandem::binding
