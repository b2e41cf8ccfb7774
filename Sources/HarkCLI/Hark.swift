import ArgumentParser

/// The `hark` command: the root holds only configuration; each job is a subcommand.
@main
struct Hark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hark",
    abstract: "Speak the Nuance Mix ASRaaS Recognize protocol: recognize, serve, load-test.",
    version: HarkVersion.current,
    subcommands: [Recognize.self, Serve.self, Load.self, Health.self]
  )
}

/// The version of the `hark` command.
enum HarkVersion {
  static let current = "0.1.0"
}
