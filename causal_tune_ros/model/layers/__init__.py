"""model/layers"""
