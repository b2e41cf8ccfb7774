import ArgumentParser

/// A duration on the command line (DESIGN rule 10): a number with a unit — `500ms`, `10s`, `2m`,
/// `1h` — or a bare number of seconds. `0` means "none" where a flag says so.
struct DurationArgument: ExpressibleByArgument, Sendable, Hashable, CustomStringConvertible {
  /// The duration in nanoseconds.
  var nanoseconds: Int64

  init(nanoseconds: Int64) {
    self.nanoseconds = nanoseconds
  }

  static func seconds(_ seconds: Int64) -> Self { Self(nanoseconds: seconds * 1_000_000_000) }
  static func minutes(_ minutes: Int64) -> Self { .seconds(minutes * 60) }

  init?(argument: String) {
    let text = argument.trimmingCharacters(in: " ").lowercased()
    let units: [(suffix: String, nanoseconds: Double)] = [
      ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
    ]
    var number = Substring(text)
    var scale = 1e9
    for unit in units where text.hasSuffix(unit.suffix) {
      number = text.dropLast(unit.suffix.count)
      scale = unit.nanoseconds
      break
    }
    // Plain decimal notation only: no signs, exponents, infinities or NaN.
    guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
      let value = Double(number), value.isFinite, value * scale < 1e18
    else { return nil }
    nanoseconds = Int64((value * scale).rounded())
  }

  var isZero: Bool { nanoseconds == 0 }

  var description: String {
    if nanoseconds % 60_000_000_000 == 0 && nanoseconds > 0 {
      return "\(nanoseconds / 60_000_000_000)m"
    }
    if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
    return "\(nanoseconds / 1_000_000)ms"
  }

  var defaultValueDescription: String { description }
}
