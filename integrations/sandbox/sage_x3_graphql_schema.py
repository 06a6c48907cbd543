"""The GraphQL (Xtrem) face of the X3 simulator: its node types and their SDL, per schema variant.

Shapes follow API_FACTS 2.2b (all [U]): node types ``Supplier``, ``PurchaseOrder``,
``PurchaseInvoice``, ``Account``, ``Dimension``, ``JournalEntry`` with line types; every type and
field description ends with the X3 class or column in parentheses; field names differ between the
two roots (``companyName1`` under ``x3MasterData``, ``companyName`` under ``sage``); references
are objects (``billBySupplier { _id code }``) and ``_id`` strings in inputs; decimals are strings.

Two variants: ``x3MasterData`` (newer installs: ``x3MasterData { supplier { query(…) } }``, lines
as ``lines { query(…) }``, mutations under ``x3MasterData | x3Purchasing | x3Finance``) and
``sage`` (the docs: ``sage { x3BusinessPartners { supplier(…) } }``, lines as ``lines(…)``,
mutations under ``sage { x3BusinessPartners | x3Purchase | x3Accounting }``). Either may have no
mutations at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from .sage_x3_schema import DATE, DATETIME, DEC, INT, STR

MASTER, SAGE = "x3MasterData", "sage"
VARIANTS = (MASTER, SAGE)


@dataclass(frozen=True)
class Field:
    """One field of a node or line type: its name under each root, its X3 column, its label."""

    master: str
    sage: str
    column: str
    label: str
    reference: str = ""  # the node type a reference field points to

    def name(self, variant: str) -> str:
        return self.master if variant == MASTER else self.sage


@dataclass(frozen=True)
class Node:
    """One X3 class as a GraphQL node type, where it sits under each root, and its lines."""

    klass: str
    type_name: str
    label: str
    fields: tuple[Field, ...]
    master_path: tuple[str, str]  # package, node (queries and mutations alike)
    sage_path: tuple[str, str]
    lines: Field | None = None
    line_type: str = ""
    line_label: str = ""
    line_fields: tuple[Field, ...] = ()

    def path(self, variant: str) -> tuple[str, str]:
        return self.master_path if variant == MASTER else self.sage_path


def _f(master: str, sage: str, column: str, label: str, reference: str = "") -> Field:
    return Field(master, sage, column, label, reference)


NODES: dict[str, Node] = {node.klass: node for node in (
    Node("BPSUPPLIER", "Supplier", "Supplier", (
        _f("code", "code", "BPSNUM", "Supplier code"),
        _f("companyName1", "companyName", "BPSNAM", "Company name"),
        _f("shortCompanyName", "shortName", "BPSSHO", "Short name"),
        _f("country", "country", "CRY", "Country"),
        _f("currency", "currency", "CUR", "Currency"),
        _f("paymentTerm", "paymentTerm", "PTE", "Payment term"),
        _f("addressLine1", "address", "BPAADDLIG", "Address line"),
        _f("city", "city", "CTY", "City"),
        _f("postalCode", "zipCode", "POSCOD", "Postal code"),
        _f("telephone", "phone", "TEL", "Telephone"),
        _f("website", "website", "WEB", "Website"),
        _f("contactName", "contact", "CNTNAM", "Contact"),
    ), ("x3MasterData", "supplier"), ("x3BusinessPartners", "supplier")),
    Node("PORDER", "PurchaseOrder", "Purchase order", (
        _f("id", "orderNumber", "POHNUM", "Order number"),
        _f("supplier", "billBySupplier", "BPSNUM", "Supplier", "Supplier"),
        _f("orderDate", "orderDate", "ORDDAT", "Order date"),
        _f("currency", "currency", "CUR", "Currency"),
        _f("totalAmountExcludingTax", "totalAmount", "TOTAMTNOT", "Total excluding tax"),
    ), ("x3Purchasing", "purchaseOrder"), ("x3Purchase", "purchaseOrder"),
        _f("lines", "lines", "PORDERP", "Lines"), "PurchaseOrderLine", "Purchase order line", (
        _f("lineNumber", "lineNumber", "POPLIN", "Line number"),
        _f("item", "product", "ITMREF", "Item"),
        _f("itemDescription", "description", "ITMDES", "Item description"),
        _f("quantity", "quantity", "QTYUOM", "Quantity"),
        _f("purchaseUnit", "unit", "PUU", "Purchase unit"),
        _f("grossPrice", "grossPrice", "GROPRI", "Gross price"),
        _f("lineAmount", "amount", "LINAMT", "Line amount"),
    )),
    Node("PINVOICE", "PurchaseInvoice", "Purchase invoice", (
        _f("id", "invoiceNumber", "NUM", "Invoice number"),
        _f("billBySupplier", "supplier", "BPR", "Bill-by supplier", "Supplier"),
        _f("supplierDocumentNumber", "supplierInvoiceNumber", "BPRVCR", "Supplier document number"),
        _f("documentDate", "invoiceDate", "BPRDAT", "Document date"),
        _f("accountingDate", "accountingDate", "ACCDAT", "Accounting date"),
        _f("currency", "currency", "CUR", "Currency"),
        _f("totalAmountExcludingTax", "amountExcludingTax", "AMTNOT", "Total excluding tax"),
        _f("totalAmountIncludingTax", "amountIncludingTax", "AMTATI", "Total including tax"),
    ), ("x3Purchasing", "purchaseInvoice"), ("x3Purchase", "purchaseInvoice"),
        _f("lines", "lines", "PINVOICED", "Lines"), "PurchaseInvoiceLine", "Purchase invoice line", (
        _f("lineNumber", "lineNumber", "PIDLIN", "Line number"),
        _f("purchaseOrder", "order", "POHNUM", "Purchase order", "PurchaseOrder"),
        _f("purchaseOrderLine", "orderLine", "POPLIN", "Purchase order line"),
        _f("item", "product", "ITMREF", "Item"),
        _f("quantity", "quantity", "QTYUOM", "Quantity"),
        _f("netPrice", "netPrice", "NETPRI", "Net price"),
        _f("lineAmount", "amount", "AMTNOTLIN", "Line amount excluding tax"),
        _f("account", "glAccount", "ACC", "Account", "Account"),
        _f("costCenter", "analytical", "CCE", "Cost center", "Dimension"),
    )),
    Node("GACCOUNT", "Account", "Account", (
        _f("code", "code", "ACC", "Account"),
        _f("description", "label", "DES", "Description"),
        _f("chartOfAccounts", "chart", "COA", "Chart of accounts"),
    ), ("x3Finance", "account"), ("x3Accounting", "account")),
    Node("CACCE", "Dimension", "Dimension", (
        _f("code", "code", "CCE", "Dimension"),
        _f("description", "label", "DES", "Description"),
        _f("dimensionType", "type", "DIE", "Dimension type"),
    ), ("x3Finance", "dimension"), ("x3Accounting", "dimension")),
    Node("GACCENTRY", "JournalEntry", "Journal entry", (
        _f("id", "entryNumber", "NUM", "Entry number"),
        _f("journal", "entryType", "TYP", "Journal type"),
        _f("accountingDate", "accountingDate", "ACCDAT", "Accounting date"),
        _f("reference", "reference", "REF", "Reference"),
        _f("description", "description", "DESVCR", "Description"),
        _f("currency", "currency", "CUR", "Currency"),
    ), ("x3Finance", "journalEntry"), ("x3Accounting", "journalEntry"),
        _f("lines", "lines", "GACCENTRYD", "Lines"), "JournalEntryLine", "Journal entry line", (
        _f("lineNumber", "lineNumber", "LIN", "Line number"),
        _f("account", "account", "ACC", "Account", "Account"),
        _f("costCenter", "dimension", "CCE", "Cost center", "Dimension"),
        _f("sense", "sign", "SNS", "Sense, 1 debit or -1 credit"),
        _f("amount", "amount", "AMTCUR", "Amount"),
        _f("description", "lineDescription", "DES", "Line description"),
    )),
)}
# Classes that take a create mutation (and suppliers an update), when the variant has mutations.
CREATABLE = ("BPSUPPLIER", "PINVOICE", "GACCENTRY")
UPDATABLE = ("BPSUPPLIER",)
SCALARS = {STR: "String", INT: "Int", DEC: "Decimal", DATE: "Date", DATETIME: "Datetime"}
PAGE_ARGS = "first: Int, after: String, filter: String, orderBy: String"
LINE_ARGS = "first: Int, after: String"


def _describe(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def _scalar(kinds: dict[str, str], column: str) -> str:
    return SCALARS[kinds[column]]


def sdl(variant: str, mutations: bool, kinds: dict[str, dict[str, str]]) -> str:
    """The SDL of one variant. ``kinds`` gives each class's column types (and its lines' under the
    lines column name), from the store's class specs."""
    out = ['scalar Decimal', 'scalar Date', 'scalar Datetime',
           'type PageInfo { endCursor: String hasNextPage: Boolean! startCursor: String hasPreviousPage: Boolean! }']
    for node in NODES.values():
        own, line_kinds = kinds[node.klass], kinds.get(node.lines.column if node.lines else "", {})
        out += _connection(node.type_name)
        fields = [f'{_describe("Identifier, the record key (" + node.fields[0].column + ")")} _id: ID!']
        fields += [_field_sdl(f, variant, own) for f in node.fields]
        fields.append(f'{_describe("Last update (UPDDATTIM)")} _updateStamp: Datetime')
        if node.lines:
            out += _connection(node.line_type)
            line_fields = [f'{_describe(node.line_label + " identifier")} _id: ID!']
            line_fields += [_field_sdl(f, variant, line_kinds) for f in node.line_fields]
            out.append(f'{_describe(f"{node.line_label} ({node.lines.column})")} type {node.line_type} '
                       '{ ' + " ".join(line_fields) + ' }')
            described = _describe(f"{node.lines.label} ({node.lines.column})")
            if variant == MASTER:
                out.append(f'type {node.line_type}_Collection {{ query({LINE_ARGS}): {node.line_type}_Connection }}')
                fields.append(f'{described} {node.lines.name(variant)}: {node.line_type}_Collection')
            else:
                fields.append(f'{described} {node.lines.name(variant)}({LINE_ARGS}): {node.line_type}_Connection')
        out.append(f'{_describe(f"{node.label} ({node.klass})")} type {node.type_name} {{ ' + " ".join(fields) + ' }')
        if mutations and node.klass in CREATABLE:
            out += _inputs(node, variant, own, line_kinds)
    out += _roots(variant, mutations)
    return "\n".join(out)


def _connection(type_name: str) -> list[str]:
    return [f'type {type_name}_Edge {{ node: {type_name}! cursor: String! }}',
            f'type {type_name}_Connection {{ edges: [{type_name}_Edge!]! pageInfo: PageInfo! totalCount: Int }}']


def _field_sdl(field: Field, variant: str, kinds: dict[str, str]) -> str:
    kind = field.reference or _scalar(kinds, field.column)
    return f'{_describe(f"{field.label} ({field.column})")} {field.name(variant)}: {kind}'


def _input_field(field: Field, variant: str, kinds: dict[str, str]) -> str:
    kind = "ID" if field.reference else _scalar(kinds, field.column)
    return f'{_describe(f"{field.label} ({field.column})")} {field.name(variant)}: {kind}'


def _inputs(node: Node, variant: str, own: dict[str, str], line_kinds: dict[str, str]) -> list[str]:
    fields = [_input_field(f, variant, own) for f in node.fields]
    out = []
    if node.lines:
        out.append(f'{_describe(f"{node.line_label} input ({node.lines.column})")} input {node.line_type}_Input '
                   '{ ' + " ".join(_input_field(f, variant, line_kinds) for f in node.line_fields) + ' }')
        fields.append(f'{_describe(f"{node.lines.label} ({node.lines.column})")} '
                      f'{node.lines.name(variant)}: [{node.line_type}_Input!]')
    out.append(f'{_describe(f"{node.label} input ({node.klass})")} input {node.type_name}_Input '
               '{ ' + " ".join(fields) + ' }')
    return out


def _roots(variant: str, mutations: bool) -> list[str]:
    """Query (and Mutation) roots: packages holding the nodes, as each variant nests them."""
    packages: dict[str, list[Node]] = {}
    for node in NODES.values():
        packages.setdefault(node.path(variant)[0], []).append(node)
    out = []
    query_fields, mutation_fields = [], []
    for package, nodes in packages.items():
        type_name = package[0].upper() + package[1:]
        if variant == MASTER:
            out += [f'type {n.type_name}_Operations {{ query({PAGE_ARGS}): {n.type_name}_Connection '
                    f'read(_id: ID!): {n.type_name} }}' for n in nodes]
            out.append(f'type {type_name} {{ ' + " ".join(f"{n.path(variant)[1]}: {n.type_name}_Operations"
                                                          for n in nodes) + ' }')
        else:
            out.append(f'type {type_name} {{ ' + " ".join(f"{n.path(variant)[1]}({PAGE_ARGS}): {n.type_name}_Connection"
                                                          for n in nodes) + ' }')
        query_fields.append(f"{package}: {type_name}")
        writable = [n for n in nodes if n.klass in CREATABLE]
        if mutations and writable:
            for n in writable:
                update = f' update(_id: ID!, data: {n.type_name}_Input!): {n.type_name}' if n.klass in UPDATABLE else ""
                out.append(f'type {n.type_name}_Mutations {{ create(data: {n.type_name}_Input!): {n.type_name}{update} }}')
            out.append(f'type {type_name}_Mutations {{ ' + " ".join(f"{n.path(variant)[1]}: {n.type_name}_Mutations"
                                                                    for n in writable) + ' }')
            mutation_fields.append(f"{package}: {type_name}_Mutations")
    if variant == MASTER:
        out.append('type Query { ' + " ".join(query_fields) + ' }')
        if mutation_fields:
            out.append('type Mutation { ' + " ".join(mutation_fields) + ' }')
    else:
        out.append('type Sage { ' + " ".join(query_fields) + ' }')
        out.append('type Query { sage: Sage }')
        if mutation_fields:
            out.append('type SageMutations { ' + " ".join(mutation_fields) + ' }')
            out.append('type Mutation { sage: SageMutations }')
    return out
