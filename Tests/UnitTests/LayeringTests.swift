import Foundation
import PinGlassTesting
import XCTest

/// The domain reaches providers only through its own protocols: no file of `Sources/PinGlass`
/// imports the HTTP client or libcurl (SwiftPM would let an undeclared import through when
/// the module happens to be built already, so the package manifest alone does not hold it).
final class LayeringTests: XCTestCase {
    func testTheDomainImportsNoHTTPClient() throws {
        let domain = try TestEnvironment.root() + "/Sources/PinGlass"
        let files = try XCTUnwrap(FileManager.default.enumerator(atPath: domain)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") }
        XCTAssertGreaterThan(files.count, 50, "the domain's sources were found")
        var offenders: [String] = []
        for file in files {
            let text = try String(contentsOfFile: domain + "/" + file, encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                let module = line.split(separator: " ").last.map(String.init) ?? ""
                if ["HTTPClient", "CCurl", "CShims", "Providers"].contains(module) { offenders.append("\(file): \(line)") }
            }
        }
        XCTAssertEqual(offenders, [])
    }
}
