#!/usr/bin/env bash
# Generates a backend from the archetype into a temporary directory and builds it against the
# IOMMU Lab artifacts installed in ~/.m2: the bundle must build, its register test must pass and
# the conformance kit must run, failing with "not implemented yet" until the backend is written.
# Run from the repository root after `mvn -B install -DskipTests`.
set -euo pipefail
root="$(pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
mvn -B -q archetype:generate -DarchetypeGroupId=org.iommulab -DarchetypeArtifactId=backend-archetype \
    -DarchetypeVersion=0.1.0-SNAPSHOT -DgroupId=org.example -DartifactId=smoke-backend -Dversion=1.0.0-SNAPSHOT \
    -Dpackage=org.example.smoke -Dvendor=smoke -DclassPrefix=Smoke -DinteractiveMode=false
cd smoke-backend
mvn -B -q package -DskipTests
unzip -p target/smoke-backend-1.0.0-SNAPSHOT.jar META-INF/MANIFEST.MF | tr -d '\r\n ' | grep -q 'Service-Component:OSGI-INF/org.example.smoke.internal.SmokeBackend.xml' \
    || { echo "archetype smoke: the bundle has no DS component" >&2; exit 1; }
mvn -B -q test -Dmaven.test.failure.ignore=true > /dev/null || true
reports=target/surefire-reports
grep -q 'Tests run: 2, Failures: 0, Errors: 0' "$reports/org.example.smoke.internal.hw.SmokeHardwareTest.txt" \
    || { echo "archetype smoke: the generated register test failed" >&2; exit 1; }
grep -q 'allocateDomain is not implemented yet' "$reports/org.example.smoke.internal.SmokeConformanceTest.txt" \
    || { echo "archetype smoke: the conformance kit did not report what is missing" >&2; exit 1; }
# Loaded into a running launcher, the new backend creates instances (felix:install returns "Bundle ID: N").
jar="$(pwd)/target/smoke-backend-1.0.0-SNAPSHOT.jar"
out="$("$root/iommulab" -c "b = (felix:install file:$jar); felix:start (\$b substring 11); iommu:create smoke s0; dma:translate s0 0x10 0x1000")"
[ "$out" = "$(printf 's0\nfault 0x0 NOT_IMPLEMENTED')" ] \
    || { echo "archetype smoke: the launcher did not load the generated backend: $out" >&2; exit 1; }
echo "archetype smoke: generated, built, register test passed, kit reports what is missing, loaded into the launcher"
