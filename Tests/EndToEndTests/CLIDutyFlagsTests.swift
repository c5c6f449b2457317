import XCTest
import Foundation
import PinGlassTesting

/// The duty commands' flags as an operator's crontab uses them. Each duty's own options are
/// made from its settings table at run time (`DutySettingOptions`, found by ArgumentParser
/// through reflection), so nothing but this test notices a flag that appears, disappears or
/// no longer parses: a crontab line that worked must keep working, and no flag may be
/// offered that the duty does not read.
extension CLITests {
    /// Every cron duty takes `--env-file`, `--for`, `--every` and `--help`.
    static let sharedDutyFlags = ["env-file", "for", "every", "help"]

    /// Each duty's own flags, in the order `--help` lists them.
    static let dutyFlags: [(command: String, flags: [String])] = [
        ("dispatch", ["batch-size", "max-attempts", "task-deadline", "reference-link-ttl"]),
        ("poll-kie", ["batch-size", "poll-interval", "task-deadline", "max-download-bytes", "download-timeout"]),
        ("sweep", ["batch-size", "max-attempts", "deadline-grace", "task-deadline", "worker-silence", "queue-alert",
                   "5xx-alert", "5xx-window"]),
        ("deliver", ["batch-size", "chat-interval", "global-rate", "lease", "media-link-ttl"]),
        ("refund", ["batch-size", "timeout", "lease", "retry-base", "retry-cap", "alert-after-attempts", "settle"]),
        ("prune", ["deliveries", "webhook-logs", "rate-events", "worker-hosts", "server-errors", "orphan-grace", "batch-size"]),
        ("reconcile", ["pending-after", "batch-size"]),
    ]

    /// `--help` lists exactly the expected flags: one more or one fewer fails.
    func testEveryDutyOffersExactlyItsFlags() throws {
        for (command, flags) in Self.dutyFlags {
            let (status, help, err) = try cli([command, "--help"])
            XCTAssertEqual(status, 0, "\(command): \(err)")
            let listed = Self.options(inHelp: help).map(\.name)
            XCTAssertEqual(Set(listed), Set(Self.sharedDutyFlags + flags), "\(command): \(help)")
            XCTAssertEqual(listed.count, Set(listed).count, "\(command): each flag once: \(listed)")
            XCTAssertEqual(listed.filter { !Self.sharedDutyFlags.contains($0) }, flags, "\(command): the order --help lists them")
        }
    }

    /// Every duty flag parses with a valid value (its own default as `--help` shows it): the
    /// command gets past parsing and validation to reading its configuration, which is missing
    /// here (exit 78). `--for` and `--every` together, and `--env-file`, the same.
    func testEveryDutyFlagParsesAValidValue() throws {
        for (command, flags) in Self.dutyFlags {
            let (_, help, _) = try cli([command, "--help"])
            let defaults = Dictionary(uniqueKeysWithValues: Self.options(inHelp: help).map { ($0.name, $0.defaultValue) })
            for flag in flags {
                let value = try XCTUnwrap(defaults[flag] ?? nil, "\(command) --\(flag) shows its default: \(help)")
                let (status, _, err) = try cli([command, "--\(flag)", value])
                XCTAssertEqual(status, 78, "\(command) --\(flag) \(value): \(err)")
                XCTAssertTrue(err.contains("configuration:"), "\(command) --\(flag) \(value): \(err)")
            }
            for args in [["--for", "55s", "--every", "10s"], ["--env-file", "/dev/null"]] {
                let (status, _, err) = try cli([command] + args)
                XCTAssertEqual(status, 78, "\(command) \(args): \(err)")
                XCTAssertTrue(err.contains("configuration:"), "\(command) \(args): \(err)")
            }
        }
    }

    /// The options of a `--help` text: each entry starts on a line indented by two spaces
    /// (`  --name <value>` or `  -h, --help`) and runs on over the more indented lines after it.
    static func options(inHelp help: String) -> [(name: String, defaultValue: String?)] {
        var entries: [String] = []
        for line in help.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("  --") || line.hasPrefix("  -h, --") {
                entries.append(line)
            } else if line.hasPrefix("   "), !entries.isEmpty {
                entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces)
            }
        }
        return entries.map { entry in
            let long = entry.dropFirst(entry.hasPrefix("  -h, ") ? "  -h, --".count : "  --".count)
            let name = String(long.prefix { $0.isLetter || $0.isNumber || $0 == "-" })
            let defaultValue = entry.range(of: "(default: ").map { start in
                String(entry[start.upperBound...].prefix { $0 != ")" })
            }
            return (name, defaultValue)
        }
    }
}
