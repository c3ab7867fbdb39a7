//! Column and table definitions (reference §5.3, §5.4): the reads that discover the Marketo
//! solution's names, and creating and deleting add-sync-filter's column. Part of the one
//! [`Dataverse`] client, by subject (`client.rs` holds the rest).

use serde_json::{Value, json};

use s2s_core::odata::{key_segment, query, quote};
use s2s_core::{Method, Result};

use crate::client::{Dataverse, METADATA_IDS_PER_QUERY, Written, entity_id, guid};
use crate::codes;
use crate::model::*;

impl Dataverse<'_> {
    /// The components of one type in a solution (reference §5.3 step 2).
    pub async fn solution_components(
        &self,
        solution_id: &str,
        component_type: i64,
    ) -> Result<Vec<SolutionComponent>> {
        let sol = guid(solution_id, "solution id")?;
        let q = query(&[
            ("$select", "objectid,componenttype"),
            (
                "$filter",
                &format!("_solutionid_value eq {sol} and componenttype eq {component_type}"),
            ),
        ]);
        self.list(&format!("solutioncomponents?{q}"), "solution components")
            .await
    }

    const ENTITY_SELECT: &'static str = "MetadataId,LogicalName,SchemaName,EntitySetName,DisplayName,PrimaryIdAttribute,PrimaryNameAttribute";

    /// The entities with these MetadataIds (solution components' `objectid`s), in one
    /// `EntityDefinitions?$filter=MetadataId eq … or …` per [`METADATA_IDS_PER_QUERY`] ids
    /// rather than one request each (metadata `$filter` takes any primitive property,
    /// query-metadata-web-api.md; `or` as in query-schema-definitions.md). Ids the org does not
    /// know (metadata deleted since) are simply absent from the answer.
    pub async fn entities_by_ids(&self, metadata_ids: &[String]) -> Result<Vec<EntityDefinition>> {
        let mut ids = Vec::new();
        for m in metadata_ids {
            let id = guid(m, "entity MetadataId")?;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let mut out = Vec::new();
        for chunk in ids.chunks(METADATA_IDS_PER_QUERY) {
            let filter = chunk
                .iter()
                // A GUID literal is unquoted in OData; each was checked for shape above.
                .map(|id| format!("MetadataId eq {id}"))
                .collect::<Vec<_>>()
                .join(" or ");
            let q = query(&[("$select", Self::ENTITY_SELECT), ("$filter", &filter)]);
            out.extend(
                self.list_metadata::<EntityDefinition>(
                    &format!("EntityDefinitions?{q}"),
                    "entity definitions",
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// An entity by logical name (`lead`); `None` if the org has no such entity.
    pub async fn entity(&self, logical_name: &str) -> Result<Option<EntityDefinition>> {
        let q = query(&[("$select", Self::ENTITY_SELECT)]);
        self.get_optional(
            &format!("{}?{q}", entity_key(logical_name)),
            "entity definition",
        )
        .await
    }

    /// Entities whose entity set is `entity_set` (metadata supports `$filter` on plain
    /// properties, reference §5.3).
    pub async fn entities_by_set_name(&self, entity_set: &str) -> Result<Vec<EntityDefinition>> {
        let q = query(&[
            ("$select", Self::ENTITY_SELECT),
            (
                "$filter",
                &format!("EntitySetName eq {}", quote(entity_set)),
            ),
        ]);
        self.list_metadata(&format!("EntityDefinitions?{q}"), "entity definitions")
            .await
    }

    /// The lookups on `entity` that point at `referenced_entity` (reference §5.3 step 4).
    pub async fn many_to_one_relationships(
        &self,
        entity: &str,
        referenced_entity: &str,
    ) -> Result<Vec<Relationship>> {
        let q = query(&[
            (
                "$select",
                "SchemaName,ReferencingAttribute,ReferencingEntityNavigationPropertyName,ReferencedEntity,ReferencingEntity",
            ),
            (
                "$filter",
                &format!("ReferencedEntity eq {}", quote(referenced_entity)),
            ),
        ]);
        self.list_metadata(
            &format!("{}/ManyToOneRelationships?{q}", entity_key(entity)),
            "relationships",
        )
        .await
    }

    /// One attribute of an entity; `None` when the entity has no such attribute (reference §5.4:
    /// check before creating).
    pub async fn attribute(&self, entity: &str, attribute: &str) -> Result<Option<Attribute>> {
        let q = query(&[(
            "$select",
            "MetadataId,LogicalName,SchemaName,AttributeType,DisplayName,Description",
        )]);
        self.get_optional(
            &format!(
                "{}/{}?{q}",
                entity_key(entity),
                key_segment("Attributes", "LogicalName", attribute)
            ),
            "attribute definition",
        )
        .await
    }

    /// The attributes of `entity` with these logical names, in one
    /// `Attributes?$filter=LogicalName eq … or …` rather than one request each; names the
    /// entity does not have are absent from the answer.
    pub async fn attributes_named(
        &self,
        entity: &str,
        logical_names: &[String],
    ) -> Result<Vec<Attribute>> {
        let mut out = Vec::new();
        for chunk in logical_names.chunks(METADATA_IDS_PER_QUERY) {
            let filter = chunk
                .iter()
                .map(|n| format!("LogicalName eq {}", quote(n)))
                .collect::<Vec<_>>()
                .join(" or ");
            let q = query(&[
                (
                    "$select",
                    "MetadataId,LogicalName,SchemaName,AttributeType,DisplayName,Description",
                ),
                ("$filter", &filter),
            ]);
            out.extend(
                self.list_metadata::<Attribute>(
                    &format!("{}/Attributes?{q}", entity_key(entity)),
                    "attribute definitions",
                )
                .await?,
            );
        }
        Ok(out)
    }

    /// Creates a Two Options column (`BooleanAttributeMetadata`) on `entity` (reference §5.4,
    /// `create-update-column-definitions-using-web-api.md`). Returns the new MetadataId when the
    /// service names it. A schema name that already exists is refused with
    /// [`codes::DUPLICATE_ATTRIBUTE_SCHEMA_NAME`].
    pub async fn create_boolean_attribute(
        &self,
        entity: &str,
        spec: &BooleanAttributeSpec<'_>,
    ) -> Result<Written<Option<String>>> {
        let req = self
            .request(
                Method::Post,
                self.url(&format!("{}/Attributes", entity_key(entity))),
            )
            .json(spec.to_json());
        Ok(self.write(req).await?.map(|resp| entity_id(&resp)))
    }

    /// Deletes a column and every value it holds: `DELETE EntityDefinitions(LogicalName='<entity>')/
    /// Attributes(<MetadataId>)` ("DeleteAttribute: DELETE to the URL of the column",
    /// learn.microsoft.com/power-apps/developer/data-platform/entity-attribute-metadata-messages).
    /// Publish the entity afterwards ([`Dataverse::publish_entities`]) so forms and views drop it.
    /// 404 (already gone) is an answer: `Done(false)`.
    pub async fn delete_attribute(&self, entity: &str, metadata_id: &str) -> Result<Written<bool>> {
        let id = guid(metadata_id, "attribute MetadataId")?;
        let req = self
            .request(
                Method::Delete,
                self.url(&format!("{}/Attributes({id})", entity_key(entity))),
            )
            .accept(404)
            .retry_on_code(codes::CUSTOMIZATION_LOCK);
        Ok(self.write(req).await?.map(|r| r.status != 404))
    }
}

/// What to create with [`Dataverse::create_boolean_attribute`].
#[derive(Debug, Clone)]
pub struct BooleanAttributeSpec<'s> {
    /// e.g. `new_SyncToMkto`; the logical name is its lower-case form.
    pub schema_name: &'s str,
    pub display_name: &'s str,
    pub description: &'s str,
    pub true_label: &'s str,
    pub false_label: &'s str,
    /// `None` leaves the platform's default.
    pub default_value: Option<bool>,
    /// Label language (1033 = English).
    pub language_code: i64,
}

impl BooleanAttributeSpec<'_> {
    /// The body of Microsoft's boolean column sample (create-update-column-definitions).
    pub fn to_json(&self) -> Value {
        let label = |text: &str| {
            json!({
                "@odata.type": "Microsoft.Dynamics.CRM.Label",
                "LocalizedLabels": [{
                    "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                    "Label": text,
                    "LanguageCode": self.language_code,
                }],
            })
        };
        let mut body = json!({
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "AttributeType": "Boolean",
            "AttributeTypeName": {"Value": "BooleanType"},
            "SchemaName": self.schema_name,
            "DisplayName": label(self.display_name),
            "Description": label(self.description),
            "RequiredLevel": {
                "Value": "None",
                "CanBeChanged": true,
                "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
            },
            "OptionSet": {
                "@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata",
                "TrueOption": {"Value": 1, "Label": label(self.true_label)},
                "FalseOption": {"Value": 0, "Label": label(self.false_label)},
                "OptionSetType": "Boolean",
            },
        });
        if let Some(d) = self.default_value {
            body["DefaultValue"] = Value::Bool(d);
        }
        body
    }
}

/// `EntityDefinitions(LogicalName='x')`, quoted and encoded.
pub(crate) fn entity_key(logical_name: &str) -> String {
    key_segment("EntityDefinitions", "LogicalName", logical_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_spec_body() {
        let spec = BooleanAttributeSpec {
            schema_name: "new_SyncToMkto",
            display_name: "Sync to Marketo",
            description: "d",
            true_label: "Yes",
            false_label: "No",
            default_value: None,
            language_code: 1033,
        };
        let v = spec.to_json();
        assert_eq!(v["SchemaName"], "new_SyncToMkto");
        assert_eq!(
            v["@odata.type"],
            "Microsoft.Dynamics.CRM.BooleanAttributeMetadata"
        );
        assert_eq!(
            v["OptionSet"]["TrueOption"]["Label"]["LocalizedLabels"][0]["Label"],
            "Yes"
        );
        assert!(v.get("DefaultValue").is_none());
        let v = BooleanAttributeSpec {
            default_value: Some(false),
            ..spec
        }
        .to_json();
        assert_eq!(v["DefaultValue"], false);
    }

    #[test]
    fn entity_keys_are_quoted_and_encoded() {
        assert_eq!(
            entity_key("lead"),
            "EntityDefinitions(LogicalName=%27lead%27)"
        );
        assert_eq!(
            entity_key("a'b/c"),
            "EntityDefinitions(LogicalName=%27a%27%27b%2Fc%27)"
        );
    }
}
