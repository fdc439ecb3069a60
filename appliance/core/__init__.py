"""The pure core: the model, the rules and the config. No I/O but reading the config file;
no clock reads; nothing here imports the rest of the appliance."""
