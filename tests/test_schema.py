from custseg import schema


def test_every_column_and_alias_maps_back_to_itself():
    for col in schema.COLUMNS:
        assert schema.canonical_name(col.name) == col.name
        for alias in col.aliases:
            assert schema.canonical_name(alias) == col.name, alias


def test_no_two_columns_share_a_key():
    keys = [schema.normalise_name(c.name) for c in schema.COLUMNS]
    assert len(keys) == len(set(keys))


def test_spelling_variants_seen_in_public_copies():
    assert schema.canonical_name("minimum_payment") == "MINIMUM_PAYMENTS"
    assert schema.canonical_name("Installment Purchases") == "INSTALLMENTS_PURCHASES"
    assert schema.canonical_name("purchases_installment_frequency") == "PURCHASES_INSTALLMENTS_FREQUENCY"
    assert schema.canonical_name("customer_id") == "CUST_ID"
    assert schema.canonical_name("one-off purchases") == "ONEOFF_PURCHASES"
    assert schema.canonical_name("Unnamed: 18") is None


def test_behaviour_has_the_17_columns():
    assert len(schema.BEHAVIOUR) == 17
    assert schema.ID not in schema.BEHAVIOUR
