"""OPC UA server: the station as a machine-vision system for PLCs and hosts (OPC 40100-1 where it maps)."""
