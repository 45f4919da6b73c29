"""The ledger: usage intervals recorded as instances and volumes change, and the charges for any
window (:mod:`.usage`); balance, credit, quotas and the out-of-credit stop (:mod:`.billing`); and
the reports drawn from them, usage tables, invoices and charges (:mod:`.invoices`)."""
