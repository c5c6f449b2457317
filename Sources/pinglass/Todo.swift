import ArgumentParser
struct Settings: ParsableCommand { static let configuration = CommandConfiguration(abstract: "todo") }
struct Reconcile: ParsableCommand { static let configuration = CommandConfiguration(abstract: "todo") }
