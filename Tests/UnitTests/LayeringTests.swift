import Foundation
import PinGlassTesting
import XCTest

/// The targets' seams, checked on the sources' imports (SwiftPM would let an undeclared
/// import through when the module happens to be built already, so the package manifest alone
/// does not hold them): the domain reaches providers only through its own protocols and speaks
/// no HTTP, and the simulator plays the providers with the configuration and their wire
/// formats, never with the payment and job logic.
final class LayeringTests: XCTestCase {
    /// What the domain and the targets it shares with the simulator never import: transports,
    /// HTTP values, the live providers and the web target.
    static let httpAndAbove = ["HTTPClient", "CCurl", "CCurlShims", "Providers", "HTTPCore", "HTTPTypes", "FastCGI", "PinGlassWeb"]

    func testTheDomainAndItsSharedTargetsImportNoHTTPNorProviders() throws {
        let imports = try Self.imports(in: ["PinGlass", "ProviderWire", "PinGlassConfig"])
        XCTAssertGreaterThan(imports.files, 60, "the sources were found")
        XCTAssertEqual(imports.lines.filter { Self.httpAndAbove.contains($0.module) }.map(\.line), [])
    }

    /// Every form of import names its module (a form the reader missed would let one through).
    func testEveryImportFormIsRead() {
        let lines = [
            "import HTTPCore", "@testable import HTTPCore", "public import HTTPCore", "internal import HTTPCore",
            "package import HTTPCore", "@_exported import HTTPCore", "@_implementationOnly import HTTPCore",
            "@preconcurrency import HTTPCore", "import struct HTTPCore.HTTPRequest", "public import func HTTPCore.percentDecode",
            "  import HTTPCore // indented", "@_exported @preconcurrency public import class HTTPCore.X",
        ]
        XCTAssertEqual(lines.map(Self.importedModule), Array(repeating: "HTTPCore", count: lines.count))
        XCTAssertEqual(["// import HTTPCore", "let important = 1", "importer()", "/// `import HTTPCore`"].map(Self.importedModule),
                       [nil, nil, nil, nil])
    }

    /// The manifest agrees: no chain of target dependencies takes the domain to HTTP values or
    /// the HTTP client (an import the sources do not show could still link them in).
    func testThePackageLinksNoHTTPIntoTheDomain() throws {
        let manifest = try String(contentsOfFile: try TestEnvironment.root() + "/Package.swift", encoding: .utf8)
        let targets = Self.targetDependencies(manifest)
        XCTAssertNotNil(targets["PinGlass"], "the domain's target was found")
        XCTAssertEqual(targets["Providers"]?.contains("HTTPClient"), true, "dependencies were read")
        XCTAssertEqual(targets["CCurlShims"], ["CCurl"], "a list on one line was read")
        let closure = Self.closure(of: "PinGlass", in: targets)
        XCTAssertTrue(closure.contains("ProviderWire") && closure.contains("Postgres"), "\(closure.sorted())")
        XCTAssertEqual(closure.intersection(["HTTPCore", "HTTPClient"]), [], "\(closure.sorted())")
    }

    /// libcurl stays with the HTTP client: the domain's closure reaches C targets (the
    /// counters' shim through SharedCounters, libpq through Postgres) but neither libcurl nor
    /// its shims; the HTTP client's closure, read the same way, does reach them.
    func testThePackageLinksNoLibcurlIntoTheDomain() throws {
        let manifest = try String(contentsOfFile: try TestEnvironment.root() + "/Package.swift", encoding: .utf8)
        let targets = Self.targetDependencies(manifest)
        let domain = Self.closure(of: "PinGlass", in: targets)
        XCTAssertTrue(domain.isSuperset(of: ["SharedCounters", "CSharedCounters", "CLibPQ"]), "\(domain.sorted())")
        XCTAssertEqual(domain.intersection(["CCurl", "CCurlShims"]), [], "\(domain.sorted())")
        XCTAssertEqual(Self.closure(of: "SharedCounters", in: targets), ["SharedCounters", "CSharedCounters"])
        XCTAssertTrue(Self.closure(of: "HTTPClient", in: targets).isSuperset(of: ["CCurl", "CCurlShims"]))
    }

    /// Targets that must not import the domain.
    static let belowTheDomain = [
        "pinglass-sim", "PinGlassConfig", "ProviderWire", "JSON", "LibCrypto", "Platform", "Postgres",
        "HTTPCore", "HTTPClient", "FastCGI", "SharedCounters", "WebURL",
    ]

    func testTheSimulatorAndTheLayersBelowTheDomainImportNoDomain() throws {
        let imports = try Self.imports(in: Self.belowTheDomain)
        XCTAssertGreaterThan(imports.files, 40, "their sources were found")
        XCTAssertEqual(imports.lines.filter { ["PinGlass", "Providers"].contains($0.module) }.map(\.line), [])
    }

    /// The domain speaks no HTTP: requests, responses and headers are the web target's
    /// (`PinGlassWeb`), which the domain and the layers below it never import.
    func testTheDomainImportsNoHTTPCoreAndNothingBelowTheWebImportsIt() throws {
        let imports = try Self.imports(in: ["PinGlass"] + Self.belowTheDomain)
        XCTAssertGreaterThan(imports.files, 100)
        XCTAssertEqual(imports.lines.filter { entry in
            entry.module == "PinGlassWeb" || (entry.line.hasPrefix("PinGlass/") && ["HTTPCore", "HTTPTypes"].contains(entry.module))
        }.map(\.line), [])
    }

    /// Every `import` line of the targets' sources (`target/file: line`) with the module it names.
    static func imports(in targets: [String]) throws -> (files: Int, lines: [(module: String, line: String)]) {
        let sources = try TestEnvironment.root() + "/Sources/"
        var files = 0
        var lines: [(String, String)] = []
        for target in targets {
            let names = try XCTUnwrap(FileManager.default.enumerator(atPath: sources + target), target)
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            XCTAssertFalse(names.isEmpty, "\(target)'s sources were found")
            files += names.count
            for name in names {
                let text = try String(contentsOfFile: sources + target + "/" + name, encoding: .utf8)
                for line in text.split(separator: "\n") {
                    if let module = importedModule(String(line)) { lines.append((module, "\(target)/\(name): \(line)")) }
                }
            }
        }
        return (files, lines)
    }

    /// The module an import declaration names, in any form: attributes (`@testable`,
    /// `@_exported`, …), an access level, a kind (`import struct X.Y`); nil for other lines.
    static func importedModule(_ line: String) -> String? {
        var words = line.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)[0]
            .split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        while let first = words.first, first.hasPrefix("@") { words.removeFirst() }
        if let first = words.first, ["public", "internal", "package", "fileprivate", "private", "open"].contains(first) {
            words.removeFirst()
        }
        guard words.first == "import", words.count >= 2 else { return nil }
        words.removeFirst()
        if words.count >= 2, ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let", "actor"].contains(words[0]) {
            words.removeFirst()
        }
        return words[0].split(separator: ".").first.map(String.init)
    }

    /// Each `.target(name:dependencies:)` (any kind: target, testTarget, executableTarget) and the
    /// targets it depends on by name (quoted names; `.product(…)` entries are other packages').
    static func targetDependencies(_ manifest: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        let pattern = #"\.(?:target|testTarget|executableTarget)\(\s*name:\s*"([^"]+)"\s*(?:,\s*dependencies:\s*\[([^\]]*)\])?"#
        let regex = try! NSRegularExpression(pattern: pattern)
        let text = manifest as NSString
        for match in regex.matches(in: manifest, range: NSRange(location: 0, length: text.length)) {
            let name = text.substring(with: match.range(at: 1))
            let list = match.range(at: 2).location == NSNotFound ? "" : text.substring(with: match.range(at: 2))
            // Quoted names outside `.product(name: "…", package: "…")`.
            let withoutProducts = list.replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
            out[name] = withoutProducts.split(separator: "\"", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
        }
        return out
    }

    /// `target` and every target it reaches through dependencies.
    static func closure(of target: String, in targets: [String: [String]]) -> Set<String> {
        var seen: Set<String> = [target]
        var todo = [target]
        while let next = todo.popLast() {
            for dependency in targets[next] ?? [] where seen.insert(dependency).inserted { todo.append(dependency) }
        }
        return seen
    }
}
