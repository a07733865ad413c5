// A minimal JSON reader for config.json, model.safetensors.index.json and safetensors headers.
// No external dependencies; numbers are doubles (exact for integers below 2^53).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tandem::json {

enum class Kind { Null, Bool, Number, String, Array, Object };

class Value {
 public:
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Value> array;
  std::map<std::string, Value> object;

  bool isNull() const { return kind == Kind::Null; }
  bool isNumber() const { return kind == Kind::Number; }
  bool isString() const { return kind == Kind::String; }
  bool isObject() const { return kind == Kind::Object; }
  bool isArray() const { return kind == Kind::Array; }
  bool isBool() const { return kind == Kind::Bool; }
  // nullptr when this is not an object or has no such key.
  const Value* find(const std::string& key) const;
};

// Throws std::runtime_error with the byte offset on malformed input; callers wrap it in
// ConfigError / CheckpointError naming the file.
Value parse(const std::string& text);

}  // namespace tandem::json
