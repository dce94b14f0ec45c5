# placeholder: owned by the infra helper
from setuptools import find_packages, setup
setup(name='mmrsfusion', version='0.1.0', packages=find_packages(exclude=('tests', 'configs', 'tools')))
