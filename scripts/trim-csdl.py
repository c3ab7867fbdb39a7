#!/usr/bin/env python3
"""Trim Microsoft's Graph v1.0 CSDL to the types tenant-sim validates request bodies against.

Usage: scripts/trim-csdl.py PATH/TO/v1.0-Prod.csdl > crates/tenant-sim/src/graph_schema.json

Source: microsoftgraph/msgraph-metadata, schemas/v1.0-Prod.csdl at commit f54f11b6 (MIT licence).
The output keeps, for the root entity types below, their base types and every complex and enum
type reachable from their structural properties: property name, type, nullability, plus the
abstract/open flags and navigation property names. Run once; the JSON is committed and
include_str!'d by the emulator, so nothing outside the repository is read at build time.
"""
import json
import sys
import xml.etree.ElementTree as ET

ROOTS = [
    "application",
    "servicePrincipal",
    "oAuth2PermissionGrant",
    "homeRealmDiscoveryPolicy",
    "organization",
    "domain",
]
EXTRA_COMPLEX = ["passwordCredential"]
NS = "{http://docs.oasis-open.org/odata/ns/edm}"


def strip(t):
    """'Collection(graph.x)' -> ('graph.x', True)."""
    if t.startswith("Collection(") and t.endswith(")"):
        return t[len("Collection("):-1], True
    return t, False


def local(t):
    return t.split(".", 1)[1] if t.startswith("graph.") else None


def main():
    tree = ET.parse(sys.argv[1])
    schema = None
    for s in tree.getroot().iter(NS + "Schema"):
        if s.get("Namespace") == "microsoft.graph":
            schema = s
            break
    if schema is None:
        sys.exit("no microsoft.graph schema")
    entities = {e.get("Name"): e for e in schema.findall(NS + "EntityType")}
    complexes = {e.get("Name"): e for e in schema.findall(NS + "ComplexType")}
    enums = {e.get("Name"): e for e in schema.findall(NS + "EnumType")}

    out = {"entityTypes": {}, "complexTypes": {}, "enumTypes": {}}
    todo = [("entity", r) for r in ROOTS] + [("complex", c) for c in EXTRA_COMPLEX]
    seen = set()
    while todo:
        kind, name = todo.pop()
        if (kind, name) in seen:
            continue
        seen.add((kind, name))
        if kind == "enum":
            out["enumTypes"][name] = [m.get("Name") for m in enums[name].findall(NS + "Member")]
            continue
        el = (entities if kind == "entity" else complexes)[name]
        props = {}
        for p in el.findall(NS + "Property"):
            t, coll = strip(p.get("Type"))
            props[p.get("Name")] = {
                "type": t,
                "collection": coll,
                "nullable": p.get("Nullable", "true") != "false",
            }
            ln = local(t)
            if ln in complexes:
                todo.append(("complex", ln))
            elif ln in enums:
                todo.append(("enum", ln))
        ty = {
            "baseType": el.get("BaseType"),
            "abstract": el.get("Abstract") == "true",
            "openType": el.get("OpenType") == "true",
            "properties": props,
        }
        if kind == "entity":
            ty["navigationProperties"] = [n.get("Name") for n in el.findall(NS + "NavigationProperty")]
        base = local(el.get("BaseType") or "")
        if base:
            todo.append((kind, base))
        (out["entityTypes"] if kind == "entity" else out["complexTypes"])[name] = ty
        # derived complex types may be sent with @odata.type; include direct subtypes
        if kind == "complex":
            for cn, c in complexes.items():
                if local(c.get("BaseType") or "") == name:
                    todo.append(("complex", cn))

    for k in out:
        out[k] = dict(sorted(out[k].items()))
    doc = {
        "_source": "microsoftgraph/msgraph-metadata schemas/v1.0-Prod.csdl at commit f54f11b6 "
        "(MIT licence, Copyright (c) Microsoft Corporation); trimmed by scripts/trim-csdl.py",
        **out,
    }
    json.dump(doc, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
