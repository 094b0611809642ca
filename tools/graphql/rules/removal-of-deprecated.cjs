// graphql-inspector diff rule: removing what the base schema already
// marked @deprecated is the second step of a deprecation, not a break.
// Fields, arguments, input fields and enum values count; so does a type
// that only deprecated fields, arguments or input fields led to. Unlike
// the built-in suppressRemovalOfDeprecatedField this covers arguments (the
// guests' token arguments go this way) and does not wave through the
// removal of any type at all.
'use strict';

const {
  getNamedType,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
} = require('graphql');

const deprecated = (item) => item != null && item.deprecationReason != null;

function wasDeprecated(change, schema) {
  const [typeName, member, argName] = change.path.split('.');
  const type = schema.getType(typeName);
  switch (change.type) {
    case 'FIELD_REMOVED':
      return (isObjectType(type) || isInterfaceType(type)) && deprecated(type.getFields()[member]);
    case 'FIELD_ARGUMENT_REMOVED': {
      if (!(isObjectType(type) || isInterfaceType(type))) return false;
      const field = type.getFields()[member];
      return field != null && deprecated(field.args.find((arg) => arg.name === argName));
    }
    case 'INPUT_FIELD_REMOVED':
      return isInputObjectType(type) && deprecated(type.getFields()[member]);
    case 'ENUM_VALUE_REMOVED':
      return isEnumType(type) && deprecated(type.getValue(member));
    case 'TYPE_REMOVED':
      return onlyDeprecatedUses(typeName, schema);
    default:
      return false;
  }
}

// Every place of the old schema that names the type is deprecated (and
// there is at least one): clients were told to stop using all of them.
function onlyDeprecatedUses(typeName, schema) {
  let uses = 0;
  for (const type of Object.values(schema.getTypeMap())) {
    if (!(isObjectType(type) || isInterfaceType(type) || isInputObjectType(type))) continue;
    for (const field of Object.values(type.getFields())) {
      if (getNamedType(field.type).name === typeName) {
        if (!deprecated(field)) return false;
        uses += 1;
      }
      for (const arg of field.args || []) {
        if (getNamedType(arg.type).name === typeName) {
          if (!deprecated(arg)) return false;
          uses += 1;
        }
      }
    }
  }
  return uses > 0;
}

module.exports = function removalOfDeprecated({ changes, oldSchema }) {
  return changes.map((change) => {
    if (change.criticality.level !== 'BREAKING' || !change.path || !oldSchema) {
      return change;
    }
    if (!wasDeprecated(change, oldSchema)) return change;
    return {
      ...change,
      criticality: {
        ...change.criticality,
        level: 'DANGEROUS',
        reason: 'It was @deprecated in the baseline: clients had a release to move off it.',
      },
    };
  });
};
