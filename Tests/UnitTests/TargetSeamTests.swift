import Foundation
import PinGlassTesting
import XCTest

/// The simulator plays the providers with the configuration and the providers' wire formats,
/// never with the payment and job logic; the generic layers and the shared targets know
/// nothing of the domain; the domain reaches providers only through its own protocols (never
/// the HTTP client, libcurl or the live Providers target) and speaks no HTTP. Checked on the
/// sources' imports: SwiftPM lets an undeclared import through when the module happens to be
/// built already, so the manifest alone does not hold it.
final class TargetSeamTests: XCTestCase {
    /// Targets that must not import the domain (`PinGlass`) nor the live providers (`Providers`).
    static let belowTheDomain = [
        "pinglass-sim", "PinGlassConfig", "ProviderWire", "JSON", "LibCrypto", "Platform", "Postgres",
        "HTTPCore", "HTTPClient", "FastCGI", "SharedCounters", "WebURL",
    ]

    /// The modules of `target`'s sources that one of `forbidden` names, as `file: line`.
    func imports(of target: String, among forbidden: Set<String>, seen: inout Int) throws -> [String] {
        let root = try TestEnvironment.root() + "/Sources/"
        let files = try XCTUnwrap(FileManager.default.enumerator(atPath: root + target), target)
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        XCTAssertFalse(files.isEmpty, "\(target)'s sources were found")
        seen += files.count
        var offenders: [String] = []
        for file in files {
            let text = try String(contentsOfFile: root + target + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                if let module = line.split(separator: " ").last, forbidden.contains(String(module)) {
                    offenders.append("\(target)/\(file): \(line)")
                }
            }
        }
        return offenders
    }

    func testTheSimulatorAndTheSharedTargetsImportNoDomain() throws {
        var offenders: [String] = []
        var seen = 0
        for target in Self.belowTheDomain {
            offenders += try imports(of: target, among: ["PinGlass", "Providers"], seen: &seen)
        }
        XCTAssertGreaterThan(seen, 40)
        XCTAssertEqual(offenders, [])
    }

    func testTheDomainImportsNoHTTPClient() throws {
        var seen = 0
        XCTAssertEqual(try imports(of: "PinGlass", among: ["HTTPClient", "CCurl", "CShims", "Providers"], seen: &seen), [])
        XCTAssertGreaterThan(seen, 50)
    }

    /// The domain speaks no HTTP: requests, responses and headers are the web target's
    /// (`PinGlassWeb`), which the domain and the layers below it never import.
    func testTheDomainImportsNoHTTPCoreAndNothingBelowTheWebImportsIt() throws {
        var seen = 0
        var offenders = try imports(of: "PinGlass", among: ["HTTPCore", "HTTPTypes", "PinGlassWeb"], seen: &seen)
        for target in Self.belowTheDomain {
            offenders += try imports(of: target, among: ["PinGlassWeb"], seen: &seen)
        }
        XCTAssertGreaterThan(seen, 100)
        XCTAssertEqual(offenders, [])
    }
}
