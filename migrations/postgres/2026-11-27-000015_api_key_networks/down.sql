DROP TABLE api_key_networks;
